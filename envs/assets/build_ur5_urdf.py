"""Writes envs/assets/ur5.urdf from the UR5 DH parameters. Run: python envs/assets/build_ur5_urdf.py."""

import math

d = [0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823]
a = [0.0, -0.425, -0.39225, 0.0, 0.0, 0.0]
alpha = [math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0]
names = ["shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"]
links = ["shoulder_link", "upper_arm_link", "forearm_link", "wrist_1_link", "wrist_2_link", "wrist_3_link"]
mass = [3.7, 8.393, 2.275, 1.219, 1.219, 0.1879]
radius = [0.06, 0.054, 0.045, 0.04, 0.04, 0.035]
limit = [2 * math.pi, 2 * math.pi, math.pi, 2 * math.pi, 2 * math.pi, 2 * math.pi]
effort = [150, 150, 150, 28, 28, 28]
vel = [3.15, 3.15, 3.15, 3.2, 3.2, 3.2]


def f(x):
    return f"{x:.10g}"


def cyl(xyz, rpy, r, l, color):
    g = f'<geometry><cylinder radius="{f(r)}" length="{f(l)}"/></geometry>'
    o = f'<origin xyz="{" ".join(map(f, xyz))}" rpy="{" ".join(map(f, rpy))}"/>'
    return f'    <visual>{o}{g}<material name="{color}"/></visual>\n    <collision>{o}{g}</collision>\n'


def box(xyz, size, color):
    g = f'<geometry><box size="{" ".join(map(f, size))}"/></geometry>'
    o = f'<origin xyz="{" ".join(map(f, xyz))}" rpy="0 0 0"/>'
    return f'    <visual>{o}{g}<material name="{color}"/></visual>\n    <collision>{o}{g}</collision>\n'


def inertial(m, r, l=0.1):
    ixx = m * (3 * r * r + l * l) / 12
    izz = m * r * r / 2
    return (
        f'    <inertial><mass value="{f(m)}"/><origin xyz="0 0 0"/>'
        f'<inertia ixx="{f(ixx)}" ixy="0" ixz="0" iyy="{f(ixx)}" iyz="0" izz="{f(izz)}"/></inertial>\n'
    )


out = [
    '<?xml version="1.0"?>',
    "<!-- UR5 built from its published Denavit-Hartenberg parameters (standard DH):",
    f"     d = {d}, a = {a}, alpha = [pi/2, 0, 0, pi/2, -pi/2, 0].",
    "     Joint i+1 sits at Tz(d_i) Tx(a_i) Rx(alpha_i) in link i, so URDF forward kinematics equal the DH",
    "     ones by construction (tests/test_robot.py checks it). Geometry is primitive (cylinders, boxes):",
    "     TinyRenderer draws primitives ~10x faster than meshes. Lateral link offsets of the real arm are",
    "     folded into d4 as DH does, so the picture is a slimmed UR5. The parallel-jaw gripper and the",
    "     tool centre point (tcp) are hrlbc's own. Written for hrlbc; units metres, kg, rad. -->",
    '<robot name="ur5_hrlbc">',
    '  <material name="grey"><color rgba="0.6 0.6 0.62 1"/></material>',
    '  <material name="blue"><color rgba="0.25 0.45 0.75 1"/></material>',
    '  <material name="dark"><color rgba="0.15 0.15 0.15 1"/></material>',
    '  <link name="base_link">',
    inertial(4.0, 0.075, 0.089) + cyl((0, 0, 0.0445), (0, 0, 0), 0.075, 0.089, "grey").rstrip("\n"),
    "  </link>",
]
parent = "base_link"
origin = ((0, 0, 0), (0, 0, 0))
for i in range(6):
    (xyz, rpy) = origin
    out.append(f'  <joint name="{names[i]}_joint" type="revolute">')
    out.append(f'    <parent link="{parent}"/><child link="{links[i]}"/>')
    out.append(f'    <origin xyz="{" ".join(map(f, xyz))}" rpy="{" ".join(map(f, rpy))}"/>')
    out.append('    <axis xyz="0 0 1"/>')
    out.append(f'    <limit lower="{f(-limit[i])}" upper="{f(limit[i])}" effort="{effort[i]}" velocity="{vel[i]}"/>')
    out.append('    <dynamics damping="0.0" friction="0.0"/>')
    out.append("  </joint>")
    r = radius[i]
    body = inertial(mass[i], r)
    color = "blue" if i % 2 == 0 else "grey"
    if i:  # joint housing on the axis (the base cylinder houses joint 1)
        body += cyl((0, 0, 0), (0, 0, 0), r * 1.1, 2.2 * r, "dark")
    if a[i] != 0:
        body += cyl((a[i] / 2, 0, 0), (0, math.pi / 2, 0), r * 0.9, abs(a[i]), color)
    if d[i] != 0:
        body += cyl((0, 0, d[i] / 2), (0, 0, 0), r * 0.9, d[i], color)
    out.append(f'  <link name="{links[i]}">')
    out.append(body.rstrip("\n"))
    out.append("  </link>")
    parent = links[i]
    origin = ((a[i], 0, d[i]), (alpha[i], 0, 0))
# flange (tool0) = DH frame 6
out += [
    '  <joint name="flange_joint" type="fixed">',
    f'    <parent link="{parent}"/><child link="tool0"/>',
    f'    <origin xyz="{" ".join(map(f, origin[0]))}" rpy="{" ".join(map(f, origin[1]))}"/>',
    "  </joint>",
    '  <link name="tool0">',
    inertial(0.3, 0.05, 0.04) + box((0, 0, 0.02), (0.05, 0.13, 0.04), "dark").rstrip("\n"),
    "  </link>",
]
for side, sign in (("left", 1), ("right", -1)):
    out += [
        f'  <joint name="{side}_finger_joint" type="prismatic">',
        '    <parent link="tool0"/>' + f'<child link="{side}_finger"/>',
        '    <origin xyz="0 0 0.04" rpy="0 0 0"/>',
        f'    <axis xyz="0 {sign} 0"/>',
        '    <limit lower="0" upper="0.055" effort="40" velocity="0.25"/>',
        "  </joint>",
        f'  <link name="{side}_finger">',
        inertial(0.05, 0.01, 0.07) + box((0, sign * 0.006, 0.035), (0.03, 0.012, 0.07), "grey").rstrip("\n"),
        "  </link>",
    ]
out += [
    '  <joint name="tcp_joint" type="fixed">',
    '    <parent link="tool0"/><child link="tcp"/>',
    '    <origin xyz="0 0 0.09" rpy="0 0 0"/>',
    "  </joint>",
    '  <link name="tcp"><inertial><mass value="0.001"/><origin xyz="0 0 0"/>'
    '<inertia ixx="1e-7" ixy="0" ixz="0" iyy="1e-7" iyz="0" izz="1e-7"/></inertial></link>',
    "</robot>",
    "",
]
open(__import__("pathlib").Path(__file__).with_name("ur5.urdf"), "w").write("\n".join(out))
